"""Reading RAW files and writing developed images."""
