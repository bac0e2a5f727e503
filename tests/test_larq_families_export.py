"""Full-size LCE export of the one larq-zoo family with a binary conv LCE 0.16 leaves float.

XNOR-Net's first fully-connected layer (a 6x6x256x4096 XNOR-scaled binary conv at 224x224) stays
float in LCE 0.16; the model records it (``fc0.lce_bconv = False``), so the converter expects one
LceBconv2d fewer and the file verifies. If LCE starts converting it, this test fails: drop the rule.
"""

import pytest

import zoo
from helpers import randomize


@pytest.mark.slow  # a 62 M-parameter conversion
def test_xnornet_full_size_converts_with_its_recorded_float_conv(tmp_path):
    import converters

    model = randomize(zoo.load("xnornet"))
    assert not model.fc0.lce_bconv and zoo.measure(model).binary_convs == 6
    report = converters.to_tflite(model, tmp_path / "xnornet.tflite")
    assert report.lce_bconv2d == 5 and report.top1_agreement >= 0.75
