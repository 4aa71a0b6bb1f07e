# What the weekly canary workflow runs: the newest releases only; fails when a claim that
# passes on the pinned set fails on them, and writes the summary to $GITHUB_STEP_SUMMARY
.venv/bin/python -m tools grid --canary
