"""The broker seam: every arrow between the hub's processes goes through it."""
