"""The original module path of the strided discriminators; they live in discriminators.py."""

from .discriminators import (AdapterBlock, CCSDiscriminator, CCSEncoderDiscriminator,  # noqa: F401
                             CoordConv, ResidualCCBlock, StridedDiscriminator, StridedResidualConvBlock)
