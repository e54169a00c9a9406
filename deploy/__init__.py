"""How Porchlight runs: the CLI, the embedded launcher, migrations and manifests."""
