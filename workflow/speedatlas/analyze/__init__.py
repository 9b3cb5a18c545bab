"""Turn cell files into tables: statistics, speed-ups along every axis, result sets of other machines."""
