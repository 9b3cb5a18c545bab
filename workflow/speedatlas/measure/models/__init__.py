"""The models a cell builds: torchvision's (zoo), the built-in transformers, a user's factory."""
