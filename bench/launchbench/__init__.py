"""The launch benchmark: complete LTI 1.3 launches against ltipro and a reference tool."""
