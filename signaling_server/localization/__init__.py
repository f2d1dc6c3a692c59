"""Words a user reads, in Chinese and English: one set of JSON catalogs (expert_console/locales/<language>/<ns>.json)
read by the console over `GET /api/v1/i18n/{language}` and by the server for what it prints (reports, PDFs)."""
