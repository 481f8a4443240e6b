"""Device profiles and drivers, and the standalone on-device runner."""
