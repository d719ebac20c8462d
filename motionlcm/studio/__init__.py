"""The motion studio: a local web page where the motion changes as you type (`motionlcm studio`, docs/studio.md)."""
