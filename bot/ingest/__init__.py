"""Files -> passages: read a knowledge file in any supported format, parse the notice or law
structure, and cut it into the passages that are embedded, retrieved and quoted."""
