"""Face forgery detector: face swaps / blending and fully synthetic faces, per face, tracked across video frames."""
