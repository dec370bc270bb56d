"""The commands' work, where the settings are unpacked into each stage's options: build, submit
(its phase 2 lines and each group's outcome), retry, status and cancel, the nightly run and
reconcile, `plan --against-shop`, `preview`, the lock, the build's ledger, rotation and the
preflight check."""
