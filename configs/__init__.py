"""Example run configs, shipped as package data: `psychosafe rebuild` finds its default here."""
