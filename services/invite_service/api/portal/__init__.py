"""The client portal (`/portal/{ws}/...`): claim pages, the session, sign-out. No staff token;
pages work without JavaScript, and callers that send `Accept: application/json` get JSON."""
