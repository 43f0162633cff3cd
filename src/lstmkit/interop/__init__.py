"""The ways in and out: Keras weights, ONNX export, torch.nn modules."""
