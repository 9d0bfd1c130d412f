"""Package discovery only (everything else is in pyproject.toml).

docs/architecture.md, "Layers", keeps the kernels and the Hydra configs in top-level folders; they ship under specific
import names, which setuptools cannot map from pyproject.toml alone:
``kernels/`` -> ``social_xlstm_kernels``, ``configs/`` -> ``social_xlstm.configs``.
Hydra's config groups (``configs/data`` ...) and the dashboard's ``static/`` hold data files and
no ``__init__.py``: they are listed as namespace packages, so setuptools ships their files as
package data of their own instead of warning that they would be ignored.
"""

from setuptools import find_namespace_packages, setup

RENAMED = {"social_xlstm_kernels": "kernels", "social_xlstm.configs": "configs"}


def packages_under(folder: str, name: str | None = None) -> list[str]:
    """``folder`` and every folder below it as package names, ``folder`` renamed to ``name``."""
    found = find_namespace_packages(include=[folder, f"{folder}.*"], exclude=["*.__pycache__"])
    return [(name or folder) + package[len(folder) :] for package in found]


CONFIG_PACKAGES = packages_under("configs", "social_xlstm.configs")

setup(
    packages=packages_under("social_xlstm") + CONFIG_PACKAGES + packages_under("kernels", "social_xlstm_kernels"),
    package_dir=RENAMED,
    package_data={**{package: ["*.yaml"] for package in CONFIG_PACKAGES}, "social_xlstm.dashboard.static": ["*"]},
)
