"""Server-rendered staff pages (login, hotline, letters and visits, staff sources). No JavaScript, no
third-party resources; every POST form carries the session's CSRF token."""
