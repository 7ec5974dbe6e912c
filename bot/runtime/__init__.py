"""The process: the composition root, the HTTP app, the scheduler, the CLI."""
