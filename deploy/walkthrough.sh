#!/usr/bin/env bash
# The README's walk-through, as a file the test suite runs against a real `porchlight dev`.
set -euo pipefail
source "${PORCHLIGHT_DATA_DIR:-.porchlight}/dev.env"   # BASE_URL, OUTBOX_URL, STAFF_TOKEN for the demo workspace
EMAIL="ana.$RANDOM@example.com"

# Invite a contact: 201 with the account id, status pending and the link's expiry.
curl -s -X POST "$BASE_URL/v1/workspaces/demo/invitations" \
  -H "Authorization: Bearer $STAFF_TOKEN" -H 'Content-Type: application/json' \
  -d "{\"email\": \"$EMAIL\", \"name\": \"Ana Lima\", \"role\": \"customer\"}"; echo

# The email is in the outbox (open $OUTBOX_URL in a browser to see it rendered).
# Wait for it, then take the claim link out of its text:
until curl -s "$OUTBOX_URL/api/messages?to=$EMAIL" | grep -q claim; do sleep 0.2; done
LINK=$(curl -s "$OUTBOX_URL/api/messages?to=$EMAIL" | python3 -c \
  'import json,re,sys; print(re.search(r"http\S+/claim/[\w.-]+", json.load(sys.stdin)["messages"][0]["text"])[0])')

# Opening the link only shows a page; the button on it POSTs to claim.
curl -s -o /dev/null -w 'GET link: %{http_code}\n' "$LINK"
curl -s -X POST -H 'Accept: application/json' "$LINK"; echo
curl -s -X POST -H 'Accept: application/json' "$LINK"; echo   # 410: That link is no longer valid.

# The status list, built by the projector from Kafka; it catches up within moments:
until curl -s -H "Authorization: Bearer $STAFF_TOKEN" "$BASE_URL/v1/workspaces/demo/accounts?email=$EMAIL&status=active" \
  | grep -q active; do sleep 0.2; done
curl -s -H "Authorization: Bearer $STAFF_TOKEN" "$BASE_URL/v1/workspaces/demo/accounts?email=$EMAIL"; echo
