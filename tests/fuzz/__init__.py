"""The fuzz corpus: seeded mutations of the reference captures and hostile crafted ones."""
