"""Rules: each platform's verdict on an asset (plan), remote names, releases, editorial and routes."""
