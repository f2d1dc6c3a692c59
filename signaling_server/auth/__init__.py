"""Who is calling: passwords, cookie sessions, bearer tokens, device credentials."""
