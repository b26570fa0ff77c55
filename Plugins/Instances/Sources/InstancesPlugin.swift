import BerthKit // the Instances plugin: see issues
