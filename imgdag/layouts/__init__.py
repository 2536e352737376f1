"""Dataset layout readers: raw archives and folders -> records of path, label, extras."""
