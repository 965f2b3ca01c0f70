"""Training the float teacher and the binary student, and the image data sets."""
