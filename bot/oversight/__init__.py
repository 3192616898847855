"""How well oversight works: figures, warning signs, report, training export, calibration."""
