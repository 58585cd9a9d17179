"""Container images without a container engine: the image documents (`documents`), deterministic
layer tarballs (`layers`), docker-archive and OCI layout files (`archive`) and the
`builtin:docker-image` builder (`builder`) that `dockerTools` in the stdlib calls."""
