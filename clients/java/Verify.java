// Verify.java: asks keyservice whether the key given as the first argument
// is valid (docs/clients.md#java shows this file whole; TestJavaVerifyPasted
// compiles and runs it as the docs say).
import dev.keyservice.v1.KeyServiceGrpc;
import dev.keyservice.v1.ValidateRequest;
import dev.keyservice.v1.ValidateResponse;
import io.grpc.ManagedChannel;
import io.grpc.ManagedChannelBuilder;
import io.grpc.StatusRuntimeException;
import java.util.concurrent.TimeUnit;

public class Verify {
  public static void main(String[] args) throws Exception {
    ManagedChannel channel = ManagedChannelBuilder.forTarget(System.getenv("KEYSERVICE_ADDR")).usePlaintext().build();
    try {
      ValidateResponse res = KeyServiceGrpc.newBlockingStub(channel)
          .withDeadlineAfter(5, TimeUnit.SECONDS)
          .validate(ValidateRequest.newBuilder().setKey(args[0]).build());
      // A wrong key is an answer (valid false, code says why), not an error.
      System.out.println(res.getValid() + " " + res.getCode() + " " + res.getKey().getOwner());
    } catch (StatusRuntimeException e) {
      // No answer could be had (UNAVAILABLE, ...): refuse the request (fail closed).
      System.out.println("false " + e.getStatus().getCode());
    } finally {
      channel.shutdownNow().awaitTermination(5, TimeUnit.SECONDS);
    }
  }
}
