"""Code both drivers share: image streaming, lifecycle-event plumbing."""
