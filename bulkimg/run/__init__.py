"""The commands' work: build, submit, retry, the nightly run, the lock, the state file,
rotation and the preflight check."""
