"""Real labelling: a project over a manifest of unlabelled samples, batches queried by a strategy, labels
given in a local web page or in Label Studio, imported back, and the next query trained on them.

Modules: `project` (the directory and its settings), `store` (the SQLite store of labels, batches and
leases), `samples` (what each sample shows), `query` (train, select, record a batch), `api` (the page's
actions as plain functions), `server` (the Starlette app and uvicorn runner), `access` (Host allow-list,
access tokens, security headers), `agreement` (Cohen's kappa of double-labelled samples), `labelstudio`
(export and import), `importing` (validated, all-or-nothing imports), `commands` (the CLI). Nothing heavy
is imported here.
"""
