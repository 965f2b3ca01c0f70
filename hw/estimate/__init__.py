"""Resource estimates of a folded network and its fit to a device."""
