"""Read models fed from the notification log, and the runner that feeds them."""
