"""Registry: regions, subregions, organisations, locations and units."""
