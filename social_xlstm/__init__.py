"""social-xlstm: traffic forecasting for road-sensor networks with Social-xLSTM."""

__version__ = "0.1.0"
