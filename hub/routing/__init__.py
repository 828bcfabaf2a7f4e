"""Who gets an alert: territories, areas and member addresses, as pure logic."""
