"""What users see of the frames: the example ring, frame reports, contact sheets and TensorBoard summaries."""
