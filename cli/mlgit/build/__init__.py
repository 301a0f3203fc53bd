"""Image builds and local container runs on a Docker engine: the model image, the serving runtime image."""
