"""social-xlstm: traffic forecasting for road-sensor networks with Social-xLSTM.

The layers, data flow and file formats are in docs/architecture.md. The Triton kernels live in
the top-level folder kernels/, which installs as the package ``social_xlstm_kernels``.
"""

__version__ = "0.1.0"
