"""Background jobs: the queue in the database, the runner, and the job kinds."""
