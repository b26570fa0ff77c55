import BerthKit // the Pickup plugin: see issues
