"""Package discovery only (everything else is in pyproject.toml).

DESIGN.md keeps the kernels and the Hydra configs in top-level folders; they ship under specific
import names, which setuptools cannot map from pyproject.toml alone:
``kernels/`` -> ``social_xlstm_kernels``, ``configs/`` -> ``social_xlstm.configs``.
"""

from setuptools import find_packages, setup

RENAMED = {"social_xlstm_kernels": "kernels", "social_xlstm.configs": "configs"}


def renamed_packages(name: str, folder: str) -> list[str]:
    return [name + sub[len(folder):] for sub in find_packages(include=[folder, f"{folder}.*"])]


setup(
    packages=find_packages(include=["social_xlstm", "social_xlstm.*"])
    + [pkg for name, folder in RENAMED.items() for pkg in renamed_packages(name, folder)],
    package_dir=RENAMED,
    package_data={"social_xlstm.configs": ["*.yaml", "*/*.yaml"], "social_xlstm.dashboard": ["static/*"]},
)
