"""2.5D baselines: segmentation-models-pytorch 2D networks on stacks of adjacent axial slices.

One adapter class (`adapters.Smp25dAdapter`) parametrised by architecture, encoder, slice count
and channels; the registered methods are small subclasses that only set those values.
"""
