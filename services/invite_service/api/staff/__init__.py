"""The staff API (`/v1/workspaces/...`): what host apps and the staff UI call, with a staff JWT."""
