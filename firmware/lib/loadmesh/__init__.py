"""loadmesh: home loads sharing one limited supply, without a master."""
