"""The on-duty roster: which experts are alerted, with a browser notification and a sound, to live requests."""
