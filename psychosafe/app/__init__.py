"""The app layer: the main job (`rebuild`), `doctor` and the local servers (`serve`). It may import any stage."""
