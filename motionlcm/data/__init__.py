"""Motion data: the HumanML3D representation, skeletons, captions, datasets and BVH import."""
