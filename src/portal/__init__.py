"""Portal: single sign-on identity and customer portal."""
