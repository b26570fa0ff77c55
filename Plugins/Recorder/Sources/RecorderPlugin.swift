import BerthKit
