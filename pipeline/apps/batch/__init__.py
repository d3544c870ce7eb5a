"""`vapipe batch`: folders of recordings, resumable, with a report."""
