# From the repository root, in the environment the README's commands create:
# rewrite the glossary tables after editing overrides/glossary.yml
.venv/bin/python overrides/hooks/glossary.py
