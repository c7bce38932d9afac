"""Files shipped with the package."""
from pathlib import Path

ASSETS = Path(__file__).parent


def sample_image_path() -> Path:
    """A real street scene (CamVid val frame 0016E5_08039, 240x180; Brostow et al., PRL 2009)."""
    return ASSETS / 'camvid_0016E5_08039.jpg'
